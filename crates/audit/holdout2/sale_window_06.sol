pragma solidity ^0.6.0;

contract TimedSale {
    uint256 public start;
    uint256 public end;
    address payable public owner;
    mapping(address => uint256) public bought;

    constructor(uint256 s, uint256 e) public {
        start = s;
        end = e;
        owner = msg.sender;
    }

    function buy() external payable {
        require(block.timestamp >= start && block.timestamp <= end, "closed");
        bought[msg.sender] += msg.value;
    }

    function collect() external {
        require(msg.sender == owner, "owner");
        require(block.timestamp > end, "running");
        owner.transfer(address(this).balance);
    }
}

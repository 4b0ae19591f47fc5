pragma solidity ^0.7.3;

// The reward counts blocks.
contract Staking {
    uint256 public constant RATE = 1e9;
    mapping(address => uint256) public stakedBlock;
    mapping(address => uint256) public stake;

    receive() external payable {}

    function enter() external payable {
        stake[msg.sender] = msg.value;
        stakedBlock[msg.sender] = block.number;
    }

    function leave() external {
        uint256 reward = (block.number - stakedBlock[msg.sender]) * RATE;
        uint256 amount = stake[msg.sender];
        stake[msg.sender] = 0;
        payable(msg.sender).transfer(amount + reward);
    }
}

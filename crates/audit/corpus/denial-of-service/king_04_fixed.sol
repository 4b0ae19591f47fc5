pragma solidity ^0.4.24;

// The dethroned king withdraws the refund himself.
contract KingOfEther {
    address public king;
    uint256 public prize;
    mapping(address => uint256) public refunds;

    function claimThrone() public payable {
        require(msg.value > prize);
        refunds[king] += prize;
        king = msg.sender;
        prize = msg.value;
    }

    function withdrawRefund() public {
        uint256 amount = refunds[msg.sender];
        refunds[msg.sender] = 0;
        msg.sender.transfer(amount);
    }
}

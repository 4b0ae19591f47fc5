pragma solidity ^0.6.0;

// Backers pull their own refunds.
contract Crowdsale {
    mapping(address => uint256) public contributed;

    function contribute() external payable {
        contributed[msg.sender] += msg.value;
    }

    function refund() external {
        uint256 amount = contributed[msg.sender];
        contributed[msg.sender] = 0;
        msg.sender.transfer(amount);
    }
}
